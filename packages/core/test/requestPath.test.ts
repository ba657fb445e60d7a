import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeRequestPath } from '../src/requestPath.js';

const n = (t: string) => normalizeRequestPath(t);

describe('normalizeRequestPath', () => {
  it('reduces absolute-form to its path and drops query and fragment', () => {
    expect(n('http://host/unsubscribe?t=1')).toEqual({ path: '/unsubscribe', unsafe: false });
    expect(n('HTTPS://host:8080')).toEqual({ path: '/', unsafe: false });
    expect(n('http://host?x')).toEqual({ path: '/', unsafe: false });
    expect(n('/a/b#frag')).toEqual({ path: '/a/b', unsafe: false });
  });
  it('decodes unreserved characters only, upper-cases other escapes', () => {
    expect(n('/%6Frders/%7e1').path).toBe('/orders/~1');
    expect(n('/a%2fb/%c3%a9').path).toBe('/a%2Fb/%C3%A9');
    expect(n('/bad%zz').path).toBe('/bad%zz');
  });
  it('removes dot segments (RFC 3986 §5.2.4) and folds duplicate slashes', () => {
    expect(n('/a/./b/../c')).toEqual({ path: '/a/c', unsafe: true });
    expect(n('/a/b/.')).toEqual({ path: '/a/b/', unsafe: false });
    expect(n('//a///b')).toEqual({ path: '/a/b', unsafe: false });
    expect(n('/../../x')).toEqual({ path: '/x', unsafe: true });
  });
  it('marks every spelling of an upward segment unsafe', () => {
    for (const t of [
      '/hooks/../orders',
      '/hooks/%2e%2e/orders',
      '/hooks/%2E./orders',
      '/hooks/..%2forders',
      '/hooks/..%5Corders',
      '/hooks\\..\\orders',
    ]) {
      expect(n(t).unsafe, t).toBe(true);
    }
    expect(n('/hooks/..x/orders').unsafe).toBe(false);
    expect(n('/hooks/a%2Fb').unsafe).toBe(false);
  });
  it('is idempotent and leaves no dot segment or doubled slash (property)', () => {
    const segment = fc.constantFrom('a', 'B', '.', '..', '%2e', '%2E%2e', '', 'x%2Fy', '%7E', 'é');
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), fc.boolean(), (segments, abs) => {
        const target = `${abs ? 'http://h' : ''}/${segments.join('/')}`;
        const once = n(target).path;
        expect(once.startsWith('/')).toBe(true);
        expect(once).not.toMatch(/\/\/|\/\.\.?(\/|$)/);
        expect(n(once).path).toBe(once);
      }),
    );
  });
});
