from .alerts import Alert
from .cameras import Camera, Zone
from .status import RealtimeCameraStatus

__all__ = ["Alert", "Camera", "RealtimeCameraStatus", "Zone"]
