from django.db import models


class InSide(models.TextChoices):
    """Which side of a counting line is "in", looking at the image and walking from point 1 to point 2."""

    LEFT = "left", "left of point 1 → point 2"
    RIGHT = "right", "right of point 1 → point 2"


class Direction(models.TextChoices):
    IN = "in"
    OUT = "out"


class Granularity(models.TextChoices):
    QUARTER = "15min", "15 minutes"
    HOUR = "hour"
    DAY = "day"


class Scope(models.TextChoices):
    CAMERA = "camera"
    ZONE = "zone"
    FLEET = "fleet"
