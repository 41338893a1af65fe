"""``python -m d7sms.sandbox``: run the sandbox without Django."""

from .cli import main

main()
