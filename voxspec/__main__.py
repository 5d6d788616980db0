"""``python -m voxspec`` works the same as ``voxspec``."""

from voxspec.cli import main

raise SystemExit(main())
