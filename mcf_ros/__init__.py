"""mcf_ros: a robot-cell monitor built on Multimodal Concept Fusion."""

__version__ = '0.1.0'
