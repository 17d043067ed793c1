from .alerts import Alert
from .cameras import Camera, Zone

__all__ = ["Alert", "Camera", "Zone"]
