"""Groups and shared accounts: the hub-side Python as modules, the LMS roster, the reconciler run from outside."""
