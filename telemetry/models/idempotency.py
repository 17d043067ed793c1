from django.db import models

__all__ = ["IdempotencyKey"]


class IdempotencyKey(models.Model):
    """The first answer to a write sent with an `Idempotency-Key` header, stored in the same transaction
    as the rows it wrote, so a retry of the same request returns that answer and writes nothing."""

    # db_index=False: the unique (api_key, endpoint, key) index serves lookups by api_key.
    api_key = models.ForeignKey("its_camera.ApiKey", on_delete=models.CASCADE, related_name="+", db_index=False)
    endpoint = models.CharField(max_length=32)
    key = models.CharField(max_length=255)
    request_sha256 = models.CharField(max_length=64, help_text="Digest of the request body.")
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "telemetry_idempotency_keys"
        constraints = [
            models.UniqueConstraint(fields=["api_key", "endpoint", "key"], name="idempotency_key_unique_per_api_key"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key}"
