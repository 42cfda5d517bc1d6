"""Small API-compatible stand-ins for ROS packages without PyPI wheels, used only when those are missing."""
