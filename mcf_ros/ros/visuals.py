"""What the monitor shows people: the ~/markers text and the ~/overlay image, as ROS messages."""

from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker, MarkerArray

from mcf_ros.presentation import draw_overlay, state_line


def markers_message(scored: dict, mode: str, stamp, frame_id: str, namespace: str) -> MarkerArray:
    """Return the state line as a text marker: red while the flag is raised, green otherwise."""
    marker = Marker(ns=namespace, id=0, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, text=state_line(scored, mode))
    marker.header.stamp, marker.header.frame_id = stamp, frame_id or 'map'
    marker.pose.orientation.w = 1.0
    marker.scale.z = 0.08
    marker.color.a = 1.0
    marker.color.r, marker.color.g, marker.color.b = (0.9, 0.15, 0.15) if scored['is_anomaly'] else (0.15, 0.7, 0.3)
    return MarkerArray(markers=[marker])


def overlay_message(rgb, scored: dict, mode: str, stamp, frame_id: str) -> Image:
    """Return the frame with the scores drawn on it, as an rgb8 Image."""
    pixels = draw_overlay(rgb, scored, mode)
    image = Image(height=pixels.shape[0], width=pixels.shape[1], encoding='rgb8', step=pixels.shape[1] * 3)
    image.header.stamp, image.header.frame_id = stamp, frame_id
    image.data = pixels.tobytes()
    return image
