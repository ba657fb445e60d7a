import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePathPattern, createClassifier } from '../src/classifier.js';
import type { Operation, Surface } from '../src/operation.js';

const http = (method: string, path = '/x'): Operation => ({
  surface: 'http',
  name: `${method} ${path}`,
  method,
  path,
});

describe('classifier defaults by surface', () => {
  const classify = createClassifier();
  it('HTTP safe methods read, others write with the block policy', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'get'])
      expect(classify(http(m)).classification).toBe('read');
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE', 'PROPFIND']) {
      expect(classify(http(m))).toMatchObject({ classification: 'write', policy: 'block', explicit: false });
    }
  });
  it('GraphQL: mutations write, queries and subscriptions read', () => {
    expect(classify({ surface: 'graphql', name: 'm', operationType: 'mutation' }).classification).toBe(
      'write',
    );
    expect(classify({ surface: 'graphql', name: 'q', operationType: 'query' }).classification).toBe('read');
    expect(classify({ surface: 'graphql', name: 's', operationType: 'subscription' }).classification).toBe(
      'read',
    );
  });
  it('jobs, cron, tools and custom write unless declared read-only', () => {
    for (const surface of ['job', 'cron', 'tool', 'custom'] as Surface[]) {
      expect(classify({ surface, name: 'n' }).classification).toBe('write');
      expect(classify({ surface, name: 'n', annotation: { classification: 'read' } }).classification).toBe(
        'read',
      );
    }
  });
});

describe('rules and annotations', () => {
  const classify = createClassifier([
    { surface: 'http', path: '/auth/**', policy: 'allow' },
    { surface: 'http', method: 'POST', path: '/orders', policy: 'queue' },
    { surface: 'http', method: 'POST', path: '/analytics/:kind', policy: 'drop' },
    { surface: 'http', method: 'GET', path: '/cron/run', classification: 'write' },
    { surface: 'job', queue: /^report\./, classification: 'read' },
  ]);
  it('first matching rule wins and is explicit', () => {
    expect(classify(http('POST', '/auth/sign-in'))).toMatchObject({ policy: 'allow', explicit: true });
    expect(classify(http('POST', '/orders?x=1'))).toMatchObject({ policy: 'queue', explicit: true });
    expect(classify(http('POST', '/analytics/click'))).toMatchObject({ policy: 'drop' });
    expect(classify(http('POST', '/analytics/click/more'))).toMatchObject({
      policy: 'block',
      explicit: false,
    });
    expect(classify(http('GET', '/cron/run'))).toMatchObject({
      classification: 'write',
      policy: 'block',
      explicit: true,
    });
    expect(classify({ surface: 'job', name: 'j', queue: 'report.daily' }).classification).toBe('read');
  });
  it('an annotation beats every rule', () => {
    expect(classify({ ...http('POST', '/orders'), annotation: { policy: 'drop' } })).toMatchObject({
      policy: 'drop',
    });
    expect(
      classify({ ...http('POST', '/orders'), annotation: { classification: 'read' } }).classification,
    ).toBe('read');
  });
  it('rejects a rule that decides nothing, naming it', () => {
    expect(() => createClassifier([{ surface: 'http' }])).toThrow(/rules\[0\]/);
  });
  it('path patterns: * one segment, ** any, :param one', () => {
    expect(compilePathPattern('/a/*').test('/a/b')).toBe(true);
    expect(compilePathPattern('/a/*').test('/a/b/c')).toBe(false);
    expect(compilePathPattern('/a/**').test('/a')).toBe(true);
    expect(compilePathPattern('/a/**').test('/a/b/c')).toBe(true);
    expect(compilePathPattern('/a.b/:id').test('/aXb/1')).toBe(false);
    expect(() => compilePathPattern('a')).toThrow(/must start with/);
  });
});

describe('classification properties', () => {
  const methods = fc.constantFrom('GET', 'HEAD', 'OPTIONS', 'TRACE', 'POST', 'PUT', 'PATCH', 'DELETE');
  const policies = fc.constantFrom('block', 'queue', 'drop', 'allow' as const);
  it('an annotation policy always decides a write, whatever the rules', () => {
    fc.assert(
      fc.property(methods, fc.webPath(), policies, policies, (method, path, rulePolicy, annotated) => {
        const classify = createClassifier([{ surface: 'http', policy: rulePolicy }]);
        const r = classify({ ...http(method, path || '/'), annotation: { policy: annotated } });
        return r.classification === 'write' && r.policy === annotated && r.explicit;
      }),
    );
  });
  it('without rules, HTTP classification depends only on the method', () => {
    const classify = createClassifier();
    fc.assert(
      fc.property(methods, fc.webPath(), fc.webPath(), (method, a, b) => {
        return (
          classify(http(method, a || '/')).classification === classify(http(method, b || '/')).classification
        );
      }),
    );
  });
  it('classification returns shared objects (nothing allocated per call)', () => {
    const classify = createClassifier([{ path: '/x', policy: 'queue' }]);
    expect(classify(http('POST', '/x'))).toBe(classify(http('PUT', '/x')));
    expect(classify(http('GET', '/y'))).toBe(classify(http('HEAD', '/z')));
  });
});

describe('matching that cannot be fooled (#11)', () => {
  const classify = createClassifier([
    { surface: 'http', method: 'POST', path: '/hooks/**', policy: 'allow' },
    { surface: 'http', method: 'GET', path: '/unsubscribe', classification: 'write' },
    { surface: 'http', method: 'POST', path: '/:repo.git/info/lfs/locks', policy: 'allow' },
    { surface: 'http', method: 'POST', path: '/Strict', caseSensitive: true, policy: 'drop' },
    { surface: 'http', method: 'POST', path: '/app/absolute', pathFrom: 'root', policy: 'drop' },
    { surface: 'http', method: 'POST', path: '/webhook', policy: 'allow' },
  ]);
  const at = (method: string, path: string, mount?: string): Operation => ({
    ...http(method, path),
    ...(mount ? { mount } : {}),
  });
  it('a GET declared a write stays one as HEAD, in another case, and in absolute-form', () => {
    for (const op of [
      at('HEAD', '/unsubscribe'),
      at('GET', '/UNSUBSCRIBE'),
      at('GET', 'http://host/unsubscribe?t=1'),
      at('GET', '/unsubscribe/'),
      at('GET', '//unsubscribe'),
      at('GET', '/%75nsubscribe'),
    ]) {
      expect(classify(op).classification, `${op.method} ${op.path}`).toBe('write');
    }
  });
  it('an allow rule never matches a path with an upward segment, in any spelling', () => {
    expect(classify(at('POST', '/hooks/github')).policy).toBe('allow');
    for (const p of ['/hooks/../orders', '/hooks/%2e%2e/orders', '/hooks/..%2forders', '/hooks/.%2E/x']) {
      expect(classify(at('POST', p)), p).toMatchObject({ classification: 'write', policy: 'block' });
    }
    // Nor does an annotation let it through.
    expect(classify({ ...at('POST', '/hooks/../x'), annotation: { policy: 'allow' } }).policy).toBe('block');
    // An explicit non-allow policy still applies.
    expect(classify({ ...at('POST', '/a/../b'), annotation: { policy: 'queue' } }).policy).toBe('queue');
  });
  it(':name.ext keeps its literal suffix, as in Express', () => {
    expect(classify(at('POST', '/x/info/lfs/locks')).policy).toBe('block');
    expect(classify(at('POST', '/repo.git/info/lfs/locks')).policy).toBe('allow');
    expect(compilePathPattern('/:from-:to').test('/a-b')).toBe(true);
    expect(compilePathPattern('/:from-:to').test('/ab')).toBe(false);
    expect(compilePathPattern('/files/*path').test('/files/a/b')).toBe(true);
    expect(compilePathPattern('/files/*path').test('/files')).toBe(false);
    expect(compilePathPattern('/users{/:id}').test('/users')).toBe(true);
    expect(compilePathPattern('/users{/:id}').test('/users/7')).toBe(true);
    expect(() => compilePathPattern('/a/:')).toThrow(/parameter name/);
  });
  it('case-insensitive by default, case-sensitive by option', () => {
    expect(classify(at('POST', '/strict')).policy).toBe('block');
    expect(classify(at('POST', '/Strict')).policy).toBe('drop');
  });
  it('rules are relative to the mount point unless written from the root', () => {
    expect(classify(at('POST', '/app/webhook', '/app')).policy).toBe('allow');
    expect(classify(at('POST', '/APP/webhook', '/app')).policy).toBe('allow');
    expect(classify(at('POST', '/app/webhook', '/other')).policy).toBe('block');
    expect(classify(at('POST', '/appwebhook', '/app')).policy).toBe('block');
    expect(classify(at('POST', '/app/absolute', '/app')).policy).toBe('drop');
    expect(classify(at('POST', '/absolute', '/app')).policy).toBe('block');
  });
});
