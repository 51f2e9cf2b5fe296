"""The embedded sandbox: moto in-process with the reference stack, plus the reference API."""

from __future__ import annotations

import boto3
import botocore.session

from ..config import Environment
from .service import ReferenceService
from .stack import Stack, load_stack, provision


class Sandbox:
    """Everything a sandbox environment starts for a run, stopped again by :meth:`stop`."""

    def __init__(self, env: Environment) -> None:
        assert env.sandbox is not None
        self.settings = env.sandbox
        self.stack: Stack = load_stack(env.sandbox.stack, env.sandbox.variant)
        self.service: ReferenceService | None = None

    def start(self) -> Sandbox:
        # The provisioner's session is deliberately separate from (and unlike) the checks' guarded one; it
        # ignores AWS_ENDPOINT_URL, which would send the provisioning to another endpoint than the run's moto.
        core = botocore.session.Session()
        core.set_config_variable("ignore_configured_endpoint_urls", True)
        provision(self.stack, boto3.Session(botocore_session=core, region_name=self.stack.region))
        if self.settings.service:
            # PortInUse (a fixed [service] port held by another program) reaches the plugin, which says it once
            self.service = ReferenceService(self.stack.service).start(self.stack.service_port)
        return self

    def service_urls(self) -> dict[str, str]:
        if self.service is None or self.settings.service is None:
            return {}
        return {self.settings.service: self.service.url}

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
