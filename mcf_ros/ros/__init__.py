"""The ROS shell: everything that imports rclpy."""
