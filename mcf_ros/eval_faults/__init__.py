"""Evaluation faults: sensor faults that training never injects, written apart from `mcf_ros.faults`.

Training teaches the model with the corruption library in `mcf_ros.faults`; scoring it on the same
library measures the catalogue it was taught. The kinds here are other failures of real cells
(a knocked camera mount, a flickering lamp, a swapped joint mapping, a slowly drifting encoder,
...), implemented without that library and with parameters it never draws. `mcf inject` writes
them into any normal bag, a simulated one or a recording of your own cell.
"""
