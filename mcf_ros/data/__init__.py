"""Pure data layer: rosbag2 I/O, labels and windows. Imports no rclpy."""
