"""Toolbox over a Keras model: the Keras 2/3 seam, devices, passes, layers, state, applications, FLOPs."""
