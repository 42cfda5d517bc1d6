"""The simulated robot cell (MuJoCo, Menagerie UR5e) that produces labelled bags for demo, tests and users.

MuJoCo picks its OpenGL backend when it is first imported, so headless EGL is chosen here,
before any module of this package imports it.
"""

import os

os.environ.setdefault('MUJOCO_GL', 'egl')
