from .detections import Detection, DetectionRecord
from .frames import FrameMetadata, FrameMetadataRecord
from .idempotency import IdempotencyKey
from .metrics import SystemMetric, SystemMetricRecord

__all__ = [
    "Detection",
    "DetectionRecord",
    "FrameMetadata",
    "FrameMetadataRecord",
    "IdempotencyKey",
    "SystemMetric",
    "SystemMetricRecord",
]
