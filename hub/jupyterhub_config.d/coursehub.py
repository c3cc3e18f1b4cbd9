# coursehub's hub side (the coursehub-hub package in this image): shared accounts, their roles, the log-in
# refusal and the reconciler service. z2jh runs this file with `c` and `get_config` in scope.
from coursehub_hub import configure

configure(c, get_config)  # type: ignore[name-defined]  # noqa: F821
