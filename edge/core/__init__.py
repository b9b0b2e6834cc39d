"""The core every role shares: the event schema, FaceHash keys and codes, topics, the broker client, files and errors.

It imports no role and none of the unit's heavy packages (OpenCV, dlib, LiteRT, gpiozero, Pillow).
"""
