"""The course images: their Python environments (built with uv) and the check of a course's command on them."""
