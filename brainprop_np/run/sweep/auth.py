"""Joining a Ray cluster by address when it asks for a token (Ray's token authentication).

Ray (2.52 and later) authenticates every RPC of a cluster started with RAY_AUTH_MODE=token
(and, since 2.59, of one started by `ray start` where ~/.ray/auth_token exists). A
client that connects by address sends the token only when token mode is on in its own
process: `ray.init(address=...)` turns it on by itself for a local cluster found
automatically (`auto`), never for an explicit HOST:PORT or ray://HOST:PORT
(ray/_private/worker.py, `maybe_enable_token_auth_if_token_available` called only for
address None or "auto"). Without it the GCS answers every call with InvalidAuthToken and
Ray's client retries for about 20 s, logging each try, before it blames the network.

So before `ray.init`, `prepare(address)` asks the cluster once, with a short timeout,
whether it wants a token (one gRPC call: GetClusterId of the GCS, or the Ray Client
server's ping for ray://). When it does, the token is taken where Ray looks for it
(RAY_AUTH_TOKEN, else the file named by RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token),
checked with a second call, and token mode is turned on in this process as Ray does
(RAY_AUTH_MODE=token). A missing or rejected token is one line (`TokenError`) saying so
and how to give it; a cluster without authentication is joined as before.
"""
import os
from pathlib import Path

PROBE_TIMEOUT_S = 5.0
HOW = ("give the head's token as $RAY_AUTH_TOKEN, in a file named by $RAY_AUTH_TOKEN_PATH, or in "
       "~/.ray/auth_token (`ray get-auth-token` on the head prints it)")


class TokenError(RuntimeError):
    """The cluster asks for a token that is missing or wrong (one line; the sweep exits 1)."""


def find_token():
    """(token, where it came from) the way Ray looks for it, or (None, None); a named file that
    cannot be read is a TokenError (Ray aborts on it)."""
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if token:
        return token, "$RAY_AUTH_TOKEN"
    named = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if named:
        try:
            token = Path(named).expanduser().read_text(encoding="utf-8").strip()
        except OSError as e:
            raise TokenError(f"$RAY_AUTH_TOKEN_PATH names {named}, which cannot be read ({e.strerror or e}); "
                             f"{HOW}") from None
        if not token:
            raise TokenError(f"$RAY_AUTH_TOKEN_PATH names {named}, which is empty; {HOW}")
        return token, f"$RAY_AUTH_TOKEN_PATH ({named})"
    default = Path.home() / ".ray" / "auth_token"
    try:
        token = default.read_text(encoding="utf-8").strip()
    except OSError:
        return None, None
    return (token, str(default)) if token else (None, None)


def _call(target, client, token):
    """One RPC to the GCS (or the Ray Client server): 'ok', 'token' (refused for its token) or 'other'."""
    import grpc
    md = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(target) as channel:
        try:
            if client:
                from ray.core.generated import ray_client_pb2 as pb, ray_client_pb2_grpc as rpc
                rpc.RayletDriverStub(channel).ClusterInfo(
                    pb.ClusterInfoRequest(type=pb.ClusterInfoType.PING), timeout=PROBE_TIMEOUT_S, metadata=md)
            else:
                from ray.core.generated import gcs_service_pb2 as pb, gcs_service_pb2_grpc as rpc
                rpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                    pb.GetClusterIdRequest(), timeout=PROBE_TIMEOUT_S, metadata=md)
        except grpc.RpcError as e:
            return "token" if e.code() == grpc.StatusCode.UNAUTHENTICATED else "other"
    return "ok"


def _probe(target, client, token=None):
    """_call, or None where it cannot be asked (no grpc or Ray's stubs, TLS)."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return None
    try:
        return _call(target, client, token)
    except ImportError:
        return None


def enable_token_mode():
    """RAY_AUTH_MODE=token in this process, as ray.init does for a local cluster."""
    os.environ["RAY_AUTH_MODE"] = "token"
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
        Config.initialize("")                       # Ray caches its config: reread the mode
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError):
        pass


def prepare(address, target):
    """Make `ray.init(address)` send the token when the cluster at target (host:port) wants one."""
    client = address.startswith("ray://")
    if _probe(target, client) != "token":
        return                                      # no authentication, or not a question we can ask
    mode = os.environ.get("RAY_AUTH_MODE", "").lower()
    if mode == "disabled":
        raise TokenError(f"the Ray cluster at {address} asks for an authentication token, but "
                         f"RAY_AUTH_MODE=disabled is set here; unset it and {HOW}")
    token, where = find_token()
    if token is None:
        raise TokenError(f"the Ray cluster at {address} asks for an authentication token and none was found; "
                         f"{HOW}")
    if _probe(target, client, token) == "token":
        raise TokenError(f"the Ray cluster at {address} rejected the authentication token from {where}: it is "
                         f"not the cluster's token; {HOW}")
    if mode != "token":
        enable_token_mode()
