"""JupyterHub's own database, in memory, with servers shared with groups as the reconciler shares them.

Where coursehub's group-share token wrapper (``count_group_shares_in_tokens`` in the hub-side config) is
tested (tests/test_hub_python.py) and measured (`make bench`): JupyterHub's real ORM and scope code, no hub.
"""

from __future__ import annotations

import logging
from typing import Any

from coursehub.groups import hubpython

HUB_CLIENT = "jupyterhub"  # the OAuth client of API tokens made at the hub


def server_scopes(account: str) -> list[str]:
    """What the reconciler shares on `account`'s default server (access, start and stop, read), filtered to
    that server as JupyterHub stores a share's scopes."""
    return [f"{name}!server={account}/" for name in hubpython.reconciler().SHARE_SCOPES]


class SharingDB:
    def __init__(self) -> None:
        from jupyterhub import orm, roles

        logging.disable(logging.INFO)  # the database's set-up lines (alembic's "stamp_revision") say nothing here
        try:
            self.db = orm.new_session_factory("sqlite://")()
        finally:
            logging.disable(logging.NOTSET)
        for role in roles.get_default_roles():
            roles.create_role(self.db, role)
        self.db.add(orm.OAuthClient(identifier=HUB_CLIENT))
        self.db.commit()

    def student(self, name: str) -> Any:
        """A user holding JupyterHub's default `user` role."""
        from jupyterhub import orm, roles

        user = orm.User(name=name)
        self.db.add(user)
        self.db.commit()
        roles.grant_role(self.db, user, "user")
        return user

    def share(self, account: str, group: str, members: list[Any], scopes: list[str] | None = None) -> Any:
        """`account` with a default server and the OAuth client JupyterHub makes for it (the one the token a
        server checks is issued to), shared with `group` of `members`. Returns the group."""
        from jupyterhub import orm

        owner = orm.User(name=account)
        spawner = orm.Spawner(user=owner, name="")
        # JupyterHub gives a server's client the access scope to that server
        client = orm.OAuthClient(identifier=self.client(account), allowed_scopes=server_scopes(account)[:1])
        shared_with = orm.Group(name=group, users=list(members))
        self.db.add_all([owner, spawner, client, shared_with])
        self.db.commit()
        spawner.oauth_client_id = client.identifier
        orm.Share.grant(self.db, spawner, shared_with, scopes=scopes or server_scopes(account))
        return shared_with

    @staticmethod
    def client(account: str) -> str:
        return f"jupyterhub-user-{account}"

    def token(self, user: Any, scopes: list[str], client: str) -> Any:
        """A token of `user` issued to `client` with these scopes, as JupyterHub finds it on a request."""
        from jupyterhub import orm

        found = orm.APIToken.find(self.db, orm.APIToken.new(user=user, scopes=scopes, client_id=client))
        assert found is not None
        return found
