"""Fault catalogue and sensor corruptions: pure numpy/OpenCV, seeded, shared by the simulator and training."""
