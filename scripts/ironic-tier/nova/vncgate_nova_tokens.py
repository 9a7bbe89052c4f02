"""Creates instances and console tokens with Nova's own objects, for vncgate's real-Nova tier.

Run inside the trixie chroot (python3-nova 31) by test/support/nova.ts:

    python3 vncgate_nova_tokens.py NOVA_CONF REQUEST_JSON

REQUEST_JSON is {"instances": [...], "tokens": [...]}:
  instances: {"uuid", "project_id", "user_id", "host", "display_name"} — an active Instance row in
             the cell database of [database] connection (Instance.create(), Nova's own object), and
             its InstanceMapping in the API database (what the API uses to find the instance's cell).
  tokens:    {"instance_uuid", "project_id", "user_id", "console_type", "host", "port",
             "internal_access_path", "ttl"} — ConsoleAuthToken(...).authorize(ttl), exactly as
             nova-compute's get_vnc_console / get_spice_console do (nova/compute/manager.py): an
             elevated context of the instance's owner, access_url_base from [vnc]
             novncproxy_base_url (novnc) or [spice] html5proxy_base_url (spice-html5).

Prints one JSON line: {"instances": [...], "tokens": [{"token", "access_url", "expires",
"console_type", "id", "instance_uuid", "host", "port"}]}. Exits non-zero with a traceback when
Nova refuses (e.g. InstanceNotFound from authorize() for a missing instance).

Why Nova's objects and not SQL: the rows must be the ones Nova writes (hash function, expiry
arithmetic, column values, the instance-exists check), not our reading of them.
"""
import json
import sys

from oslo_config import cfg

from nova import config
from nova import context as nova_context
from nova import objects

CONF = cfg.CONF

ACCESS_URL_BASE = {
    'novnc': lambda: CONF.vnc.novncproxy_base_url,
    'spice-html5': lambda: CONF.spice.html5proxy_base_url,
}


def user_context(project_id, user_id):
    # nova-compute runs authorize() under context.elevated() of the API request's context.
    return nova_context.RequestContext(user_id=user_id, project_id=project_id).elevated()


def cell_of_local_db(ctx):
    """The CellMapping whose database is this config's [database] connection (cell1)."""
    for cell in objects.CellMappingList.get_all(ctx):
        if cell.database_connection == CONF.database.connection:
            return cell
    raise SystemExit('no cell mapping has database_connection = [database] connection; run nova-manage cell_v2 create_cell')


def main():
    if len(sys.argv) != 3:
        raise SystemExit('usage: vncgate_nova_tokens.py NOVA_CONF REQUEST_JSON')
    conf_file, request = sys.argv[1], json.loads(sys.argv[2])
    # RPC is initialised (to the tier's `fake:/` transport; CellMapping needs the option
    # registered) but never used: authorize() is remotable, yet with no indirection API set it
    # writes the database directly, as it does inside nova-compute's conductor path.
    config.parse_args(['vncgate-nova-tokens', '--config-file', conf_file])
    objects.register_all()

    out = {'instances': [], 'tokens': []}
    admin = nova_context.get_admin_context()
    cell = cell_of_local_db(admin) if request.get('instances') else None
    for spec in request.get('instances', []):
        ctx = user_context(spec['project_id'], spec['user_id'])
        inst = objects.Instance(
            context=ctx,
            uuid=spec['uuid'],
            project_id=spec['project_id'],
            user_id=spec['user_id'],
            host=spec['host'],
            display_name=spec.get('display_name', 'vncgate-test'),
            vm_state='active',
            power_state=1,
            task_state=None,
        )
        inst.create()
        objects.InstanceMapping(
            context=admin,
            instance_uuid=inst.uuid,
            cell_mapping=cell,
            project_id=spec['project_id'],
            user_id=spec['user_id'],
        ).create()
        out['instances'].append({'uuid': inst.uuid, 'id': inst.id, 'cell': cell.name})

    for spec in request.get('tokens', []):
        ctx = user_context(spec['project_id'], spec['user_id'])
        console_type = spec['console_type']
        tok = objects.ConsoleAuthToken(
            context=ctx,
            console_type=console_type,
            host=spec['host'],
            port=spec['port'],
            internal_access_path=spec.get('internal_access_path'),
            instance_uuid=spec['instance_uuid'],
            access_url_base=ACCESS_URL_BASE[console_type](),
        )
        token = tok.authorize(spec['ttl'])
        out['tokens'].append({
            'token': token,
            'access_url': tok.access_url,
            'expires': tok.expires,
            'console_type': tok.console_type,
            'id': tok.id,
            'instance_uuid': tok.instance_uuid,
            'host': tok.host,
            'port': tok.port,
        })
    print(json.dumps(out))


if __name__ == '__main__':
    main()
