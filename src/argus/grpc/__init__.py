"""gRPC services of Argus; their wire code is generated into ``argus.generated``."""
