import { describe, expect, it } from 'vitest';
import { aggregateIds, hasErrorCode, type Identity } from '@cps/core';
import { permissionsFor, subjects } from '@cps/bus';

const manager: Identity = { role: 'manager', id: 's1', appId: 'a1', serviceId: 's1' };
const agent: Identity = { role: 'agent', id: 'n1', appId: 'a1', serviceId: 's1', nodeId: 'n1' };

describe('permissions derived from identities', () => {
  it('gives a manager its own service, its agents, its own aggregate: no stream administration', () => {
    const p = permissionsFor(manager);
    expect(p.sub.allow).toContain('cps.mgr.a1.s1.>');
    expect(p.sub.allow).toContain('_INBOX.manager.s1.>');
    expect(p.pub.allow).toContain('cps.agt.a1.s1.>');
    expect(p.pub.allow).toContain('cps.evt.svc.a1.s1');
    const bucket = `OBJ_${subjects.archiveBucket('s1')}`;
    const data = subjects.dataBucket('s1');
    const js = p.pub.allow.filter((s) => s.startsWith('$JS') && !s.includes(bucket) && !s.includes(data));
    expect(js.every((s) => s.endsWith('cps.evt.svc.a1.s1') || s.endsWith('svc.a1.s1'))).toBe(true);
    expect(js.some((s) => /STREAM\.(CREATE|UPDATE|DELETE|PURGE)|\.>$/.test(s))).toBe(false);
    // its own archive bucket: read-only (no publish to the bucket's subjects, no stream changes)
    const archive = p.pub.allow.filter((s) => s.includes(bucket));
    expect(archive.length).toBeGreaterThan(0);
    expect(archive.some((s) => /STREAM\.(CREATE|UPDATE|DELETE|PURGE)|MSG\.DELETE/.test(s))).toBe(false);
    expect(p.pub.allow.some((s) => s.startsWith('$O.') && !s.startsWith(`$O.${data}.`))).toBe(false);
    // its own data bucket: read and write, its own stream purged, never created, changed or deleted
    const own = p.pub.allow.filter((s) => s.includes(data));
    expect(own).toEqual(expect.arrayContaining([`$O.${data}.C.>`, `$O.${data}.M.>`]));
    expect(own.some((s) => /STREAM\.(CREATE|UPDATE|DELETE)/.test(s))).toBe(false);
    expect([...p.pub.allow, ...p.sub.allow].some((s) => s.includes('s2'))).toBe(false);
  });

  it('gives an agent only its own command subjects, its inbox, and its way to its manager', () => {
    const p = permissionsFor(agent);
    expect(p.sub.allow).toEqual(['_INBOX.agent.n1.>', 'cps.agt.a1.s1.n1.>']);
    expect(p.pub.allow).toEqual(['cps.node.a1.s1.n1.>', '_INBOX.manager.s1.>', subjects.renewal(agent)]);
    expect(p.pub.deny).toEqual(expect.arrayContaining(['$JS.>', '$KV.>', '$SRV.>']));
  });

  it('refuses roles that never join the bus, and identities missing their ids', () => {
    for (const bad of [
      { role: 'user', id: 'u1' },
      { role: 'admin', id: 'x' },
      { role: 'manager', id: 's1' },
      { role: 'agent', id: 'n1', appId: 'a1', serviceId: 's1' },
    ] as Identity[]) {
      let err: unknown;
      try {
        permissionsFor(bad);
      } catch (e) {
        err = e;
      }
      expect(hasErrorCode(err, 'validation')).toBe(true);
    }
  });
});

describe('subjects', () => {
  it('builds every subject from ids', () => {
    expect(subjects.manager('a1', 's1')).toBe('cps.mgr.a1.s1');
    expect(subjects.agent('a1', 's1', 'n1')).toBe('cps.agt.a1.s1.n1');
    expect(subjects.events(aggregateIds.service('a1', 's1'))).toBe('cps.evt.svc.a1.s1');
    expect(subjects.inbox({ role: 'agent', id: 'n1' })).toBe('_INBOX.agent.n1');
    expect(subjects.command(subjects.manager('a1', 's1'), 'add_nodes')).toBe('cps.mgr.a1.s1.add_nodes');
  });

  it('refuses ids that would widen a subject: wildcards, dots, spaces, upper case, empty', () => {
    for (const bad of ['*', '>', 'a.b', 'a b', 'A1', '', '-x', 'a'.repeat(64)]) {
      expect(() => subjects.manager(bad, 's1')).toThrow(expect.objectContaining({ code: 'validation' }));
      expect(() => subjects.agent('a1', 's1', bad)).toThrow(expect.objectContaining({ code: 'validation' }));
    }
    expect(() => subjects.command(subjects.manager('a1', 's1'), 'x.>')).toThrow(
      expect.objectContaining({ code: 'validation' }),
    );
  });
});
