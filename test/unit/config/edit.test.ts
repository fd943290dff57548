// Editing: each edit changes only the lines it must (a line diff shows exactly the edit), keeps
// comments, the DOCTYPE, attribute order, quoting, indentation and line ends, and the result
// still validates.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addChecker,
  addProcess,
  addReplicatedDir,
  EditError,
  removeAttribute,
  removeChecker,
  removeProcess,
  removeReplicatedDir,
  removeVar,
  setAttribute,
  setMacro,
  setVar,
} from '../../../agent/config/edit.ts';
import { loadUserconfig } from '../../../agent/config/userconfig.ts';
import { errors, fixture } from './helpers.ts';

interface LineDiff {
  removed: string[];
  added: string[];
}

/** Lines only in `before` and only in `after`, by longest common subsequence. */
function lineDiff(before: string, after: string): LineDiff {
  const a = before.split('\n');
  const b = after.split('\n');
  const table: number[][] = Array.from({ length: a.length + 1 }, () =>
    new Array<number>(b.length + 1).fill(0),
  );
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      const row = table[i] as number[];
      row[j] =
        a[i] === b[j] ? (table[i + 1]?.[j + 1] ?? 0) + 1 : Math.max(table[i + 1]?.[j] ?? 0, row[j + 1] ?? 0);
    }
  }
  const removed: string[] = [];
  const added: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      i++;
      j++;
    } else if (j < b.length && (i === a.length || (table[i]?.[j + 1] ?? 0) >= (table[i + 1]?.[j] ?? 0)))
      added.push(b[j++] ?? '');
    else removed.push(a[i++] ?? '');
  }
  return { removed, added };
}

const postgresql = fixture('compat-postgresql.userconfig.xml');
const mirrorLinux = fixture('seed-000-mirror-linux.userconfig.xml');
const apache = fixture('compat-apache_farm.userconfig.xml');

describe('editing with minimal diffs', () => {
  test('setting an existing attribute changes that one line only', () => {
    const after = setAttribute(
      postgresql,
      ['service', 'vip', 'interface_list', 'interface', 'real_interface', 'virtual_addr'],
      'addr',
      '10.0.0.30',
    );
    assert.deepEqual(lineDiff(postgresql, after), {
      removed: ['               <virtual_addr addr="" where="one_side_alias" />'],
      added: ['               <virtual_addr addr="10.0.0.30" where="one_side_alias" />'],
    });
    assert.ok(after.startsWith('<!DOCTYPE safe>\n<safe>\n<!-- Define the service names'));
    assert.equal(loadUserconfig(after).ok, true, 'the filled template validates');
  });

  test('a new attribute goes after the last one, in the same tag', () => {
    const after = setAttribute(mirrorLinux, ['service'], 'boot', 'on');
    assert.deepEqual(lineDiff(mirrorLinux, after), {
      removed: ['<service mode="mirror" defaultprim="alone" maxloop="3" loop_interval="24" failover="on">'],
      added: [
        '<service mode="mirror" defaultprim="alone" maxloop="3" loop_interval="24" failover="on" boot="on">',
      ],
    });
    assert.equal(
      setAttribute(after, ['service'], 'boot', 'on'),
      after,
      'setting the same value changes nothing',
    );
  });

  test('an attribute with typographic quotes is rewritten with straight ones', () => {
    const after = setAttribute(mirrorLinux, ['service', 'heart', 'heartbeat'], 'name', 'repli');
    assert.deepEqual(lineDiff(mirrorLinux, after).added, [
      '<heartbeat name="repli" ident=\u201dflow\u201d/>',
    ]);
  });

  test('removing an attribute keeps the rest of the tag', () => {
    const after = removeAttribute(mirrorLinux, ['service'], 'maxloop');
    assert.deepEqual(lineDiff(mirrorLinux, after).added, [
      '<service mode="mirror" defaultprim="alone" loop_interval="24" failover="on">',
    ]);
  });

  test('adding a replicated directory adds one line with the siblings indentation (a tab here)', () => {
    const after = addReplicatedDir(postgresql, '/var/lib/pgsql/wal');
    assert.deepEqual(lineDiff(postgresql, after), {
      removed: [],
      added: ['\t<replicated dir="/var/lib/pgsql/wal" mode="read_only"/>'],
    });
    assert.throws(
      () => addReplicatedDir(after, '/var/lib/pgsql/wal/'),
      EditError,
      'the same directory twice',
    );
  });

  test('adding a replicated directory to a mirror without <rfs> creates it', () => {
    const text =
      '<!DOCTYPE safe>\n<safe>\n  <service mode="mirror">\n    <heart><heartbeat name="default"/></heart>\n  </service>\n</safe>\n';
    const after = addReplicatedDir(text, '/srv/data', { readOnly: false });
    assert.deepEqual(lineDiff(text, after), {
      removed: [],
      added: ['    <rfs>', '      <replicated dir="/srv/data"/>', '    </rfs>'],
    });
  });

  test('removing a replicated directory removes its line only', () => {
    const after = removeReplicatedDir(mirrorLinux, '/test2replicated/');
    assert.deepEqual(lineDiff(mirrorLinux, after), {
      removed: ['<replicated dir="/test2replicated" mode="read_only"/>'],
      added: [],
    });
    assert.throws(() => removeReplicatedDir(after, '/test2replicated'), EditError);
  });

  test('adding and removing a checker', () => {
    const filled = setMacro(setMacro(apache, 'VIRTUAL_IP', '10.0.0.20'), 'APACHE_PORT', '80');
    const after = addChecker(filled, { type: 'ping', ident: 'gateway', addr: '10.0.0.1' });
    assert.deepEqual(lineDiff(filled, after), {
      removed: [],
      added: ['    <ping ident="gateway">', '      <to addr="10.0.0.1"/>', '    </ping>'],
    });
    assert.equal(
      loadUserconfig(after).config?.checkers.some((checker) => checker.resource === 'ping.gateway'),
      true,
    );
    assert.throws(() => addChecker(after, { type: 'ping', ident: 'gateway', addr: '10.0.0.2' }), EditError);
    assert.equal(
      removeChecker(after, 'ping', 'gateway'),
      filled,
      'removing the checker restores the file exactly',
    );
  });

  test('adding a process; errd and user are created when missing', () => {
    const after = addProcess(postgresql, { name: 'pgbouncer', action: 'restart', class: 'prim' });
    assert.deepEqual(lineDiff(postgresql, after), {
      removed: [],
      added: ['    <proc name="pgbouncer" action="restart" class="prim"/>'],
    });
    assert.equal(removeProcess(after, 'pgbouncer'), postgresql);
    const bare = '<!DOCTYPE safe>\n<safe>\n<service mode="light">\n</service>\n</safe>\n';
    const created = addProcess(bare, { name: 'app' });
    assert.deepEqual(lineDiff(bare, created).added, [
      '  <errd>',
      '    <proc name="app"/>',
      '  </errd>',
      '  <user/>',
    ]);
    assert.deepEqual(errors(loadUserconfig(created).problems), []);
  });

  test('variables: update in place, add, expand a self-closing <user/>, remove', () => {
    const updated = setVar(postgresql, 'SERVICES', 'postgresql-16');
    assert.deepEqual(lineDiff(postgresql, updated), {
      removed: ['    <var name="SERVICES" value="%SERVICES%"/>'],
      added: ['    <var name="SERVICES" value="postgresql-16"/>'],
    });
    const added = setVar(postgresql, 'PGDATA', '/var/lib/pgsql/data');
    assert.deepEqual(lineDiff(postgresql, added), {
      removed: [],
      added: ['    <var name="PGDATA" value="/var/lib/pgsql/data"/>'],
    });
    assert.equal(removeVar(added, 'PGDATA'), postgresql);
    const expanded = setVar(mirrorLinux, 'APP', 'a "quoted" & <value>');
    assert.deepEqual(lineDiff(mirrorLinux, expanded), {
      removed: ['<user nicestoptimeout="300" forcestoptimeout="300" logging="userlog"/>'],
      added: [
        '<user nicestoptimeout="300" forcestoptimeout="300" logging="userlog">',
        '  <var name="APP" value="a &quot;quoted&quot; &amp; &lt;value>"/>',
        '</user>',
      ],
    });
    assert.equal(loadUserconfig(expanded).config?.user?.vars[0]?.value, 'a "quoted" & <value>');
  });

  test('macros: fill a placeholder in place, or add one before <service>', () => {
    const after = setMacro(apache, 'VIRTUAL_IP', '10.0.0.20');
    assert.deepEqual(lineDiff(apache, after), {
      removed: ['<macro name="VIRTUAL_IP" value="" />'],
      added: ['<macro name="VIRTUAL_IP" value="10.0.0.20" />'],
    });
    const added = setMacro(mirrorLinux, 'ROOT', '/srv');
    assert.deepEqual(lineDiff(mirrorLinux, added), {
      removed: [],
      added: ['<macro name="ROOT" value="/srv"/>'],
    });
    assert.ok(added.indexOf('<macro name="ROOT"') < added.indexOf('<service'));
  });

  test('CRLF files keep CRLF line ends in new lines', () => {
    const crlf = postgresql.replace(/\n/g, '\r\n');
    const after = addReplicatedDir(crlf, '/srv/extra');
    assert.equal(after.replace(/\r\n/g, '').includes('\n'), false, 'no bare LF was introduced');
    assert.equal(lineDiff(crlf, after).added.length, 1);
  });

  test('edits refuse what they cannot do cleanly', () => {
    assert.throws(
      () => setAttribute('<safe><service></safe>', ['service'], 'mode', 'farm'),
      /XML syntax errors/,
    );
    assert.throws(
      () => setAttribute(postgresql, ['service', 'farm'], 'pulse', '1s'),
      /no element safe\/service\/farm/,
    );
    assert.throws(() => setAttribute(postgresql, ['service'], 'bad name', 'x'), EditError);
    assert.throws(() => removeChecker(postgresql, 'tcp', 'none'), EditError);
  });
});
