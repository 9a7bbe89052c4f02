"""Console container provider for vncgate's real-Ironic test tier.

Real Ironic's graphical consoles (``fake-graphical``, ``redfish-graphical``) ask a *console container
provider* for the VNC endpoint of a node (``ironic.drivers.modules.graphical_console.GraphicalConsole
.start_console``) and store it as ``driver_internal_info.vnc_host``/``vnc_port``. The built-in
providers either start podman/kubernetes containers or (``fake``) hard-code 192.0.2.1:5900, an
off-loopback address the tests must never open. This provider starts nothing: it returns the VNC
server the *test* started, named in the node's ``driver_info``:

    vncgate_test_vnc_host   loopback IP literal (127.0.0.0/8 or ::1)
    vncgate_test_vnc_port   TCP port, int or decimal string

Anything else is refused with ConsoleContainerError, which Ironic records as the node's
``last_error`` (the enable then fails asynchronously), so a test can never point Ironic off-box.

Registered through ``vncgate_ironic_test_provider-0.1.0.dist-info/entry_points.txt`` in the entry-point
group ``ironic.console.container`` (loaded by stevedore in ``ironic.common.console_factory``) and
selected with ``[vnc] container_provider = vncgate-test``. Base class and signatures:
``ironic/console/container/base.py`` of Ironic 29.0.5 (2025.1).

If ``VNCGATE_IRONIC_PROVIDER_LOG`` is set, every call is appended there as one JSON line, so tests can
assert when Ironic started or stopped a "container".
"""

import ipaddress
import json
import os
import time

from oslo_log import log as logging

from ironic.common import exception
from ironic.console.container import base

LOG = logging.getLogger(__name__)

PROVIDER_NAME = 'vncgate-test'
HOST_KEY = 'vncgate_test_vnc_host'
PORT_KEY = 'vncgate_test_vnc_port'


def _record(event, **fields):
    path = os.environ.get('VNCGATE_IRONIC_PROVIDER_LOG')
    if not path:
        return
    line = json.dumps(dict(event=event, time=time.time(), **fields), sort_keys=True)
    # O_APPEND writes of one short line are atomic enough for one conductor.
    with open(path, 'a', encoding='utf-8') as f:
        f.write(line + '\n')


def _error(node_uuid, reason):
    _record('error', node=node_uuid, reason=reason)
    return exception.ConsoleContainerError(provider=PROVIDER_NAME, reason=reason)


class VncgateTestConsoleContainer(base.BaseConsoleContainer):
    """Returns the loopback VNC endpoint named in the node's driver_info."""

    def __init__(self, **kwargs):
        # ConsoleContainerFactory passes its own kwargs through stevedore (none today).
        super().__init__()

    def start_container(self, task, app_name, app_info):
        node = task.node
        info = node.driver_info or {}
        host = info.get(HOST_KEY)
        port = info.get(PORT_KEY)
        if not isinstance(host, str) or not host:
            raise _error(node.uuid, 'driver_info.%s is missing' % HOST_KEY)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise _error(node.uuid, 'driver_info.%s=%r is not an IP literal' % (HOST_KEY, host))
        if not address.is_loopback:
            # Never let a test point a real Ironic (and so a proxy under test) off this machine.
            raise _error(node.uuid, 'driver_info.%s=%s is not a loopback address' % (HOST_KEY, host))
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise _error(node.uuid, 'driver_info.%s=%r is not a TCP port' % (PORT_KEY, port))
        LOG.info('vncgate-test provider: node %s app %s -> %s:%s', node.uuid, app_name, host, port)
        _record('start', node=node.uuid, app_name=app_name, host=host, port=port)
        return host, port

    def stop_container(self, task):
        LOG.info('vncgate-test provider: stop for node %s', task.node.uuid)
        _record('stop', node=task.node.uuid)

    def stop_all_containers(self):
        _record('stop_all')
