"""The contact tracer's side: collect the units' events, store them, and trace a FaceHash.

Built on the core both sides share (edge.events, edge.facehash, edge.topics, edge.broker) and never on
the unit's vision: importing anything here loads no OpenCV, dlib or LiteRT.
"""
