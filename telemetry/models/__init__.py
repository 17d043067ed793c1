from .detections import Detection, DetectionRecord
from .frames import FrameMetadata, FrameMetadataRecord
from .idempotency import IdempotencyKey
from .metrics import HOST_METRICS_CAMERA_ID, SystemMetric, SystemMetricRecord
from .rollups import (
    NIL_SCOPE_ID,
    DetectionDailyRollup,
    DetectionHourlyRollup,
    DetectionMinuteRollup,
    FrameDailyRollup,
    FrameHourlyRollup,
    FrameMinuteRollup,
    RollupScope,
    RollupWatermark,
)
from .tiers import PartitionTier

__all__ = [
    "HOST_METRICS_CAMERA_ID",
    "NIL_SCOPE_ID",
    "Detection",
    "DetectionDailyRollup",
    "DetectionHourlyRollup",
    "DetectionMinuteRollup",
    "DetectionRecord",
    "FrameDailyRollup",
    "FrameHourlyRollup",
    "FrameMetadata",
    "FrameMetadataRecord",
    "FrameMinuteRollup",
    "IdempotencyKey",
    "PartitionTier",
    "RollupScope",
    "RollupWatermark",
    "SystemMetric",
    "SystemMetricRecord",
]
