"""The contact tracer's side: collect the units' events, store them, and trace a FaceHash.

Built on edge.core (events, FaceHash codes, topics, the broker client) and never on
the unit's vision: importing anything here loads no OpenCV, dlib or LiteRT.
"""
