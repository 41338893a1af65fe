"""The version of d7sms, read by packaging (pyproject.toml) and sent in the client's User-Agent."""

__version__ = "0.1.0"
