"""The embedded local backend (filled in by the local-backend work)."""
from ..errors import ConfigError


def ensure_backend(settings):
    raise ConfigError("No Cloudflare credentials",
                      hint="Set CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN, or run %cfai login")
