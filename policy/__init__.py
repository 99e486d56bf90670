"""The CrossGuard pack directory. Being a package lets the plan and the tests import
`policy.hastack_policies`; the CLI runs `__main__.py` here with this directory on sys.path."""
