import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The README is the user's guide and docs/ holds the rest, one subject a file: every relative
 * link between them must land on a file, and on a heading when it names one (`#anchor`).
 */
const projectRoot = resolve(import.meta.dirname, '../..');
const docsDir = join(projectRoot, 'docs');
const documents = [join(projectRoot, 'README.md'), ...readdirSync(docsDir).filter((name) => name.endsWith('.md')).map((name) => join(docsDir, name))];

/** The text outside fenced code blocks: a link-like string in an example is not a link. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, heading] of prose(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const slug = heading!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

interface Link {
  from: string;
  target: string;
}

function relativeLinks(file: string): Link[] {
  const text = prose(readFileSync(file, 'utf8')).replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((match) => match[1]!)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target))
    .map((target) => ({ from: relative(projectRoot, file), target }));
}

/** Why `link` does not resolve, or undefined when it does. */
function brokenBecause(link: Link): string | undefined {
  const [path, anchor] = link.target.split('#', 2) as [string, string | undefined];
  const file = path === '' ? join(projectRoot, link.from) : resolve(dirname(join(projectRoot, link.from)), decodeURIComponent(path));
  if (!existsSync(file)) return `${link.from}: ${link.target}: no such file`;
  if (anchor === undefined || !file.endsWith('.md') || statSync(file).isDirectory()) return undefined;
  const anchors = anchorsOf(readFileSync(file, 'utf8'));
  return anchors.has(anchor) ? undefined : `${link.from}: ${link.target}: no heading #${anchor} (has ${[...anchors].join(', ')})`;
}

describe('the README and docs/', () => {
  it('every relative link resolves to a file, and to a heading where it names one', () => {
    const links = documents.flatMap(relativeLinks);
    expect(links.length).toBeGreaterThan(20);
    expect(links.map(brokenBecause).filter((problem) => problem !== undefined)).toEqual([]);
  });

  it('the anchor rule matches GitHub on the headings this project uses', () => {
    expect([...anchorsOf('## The whole stack: `npm run local`\n## Schedules: a day of jobs\n## Export\n## Export\n')]).toEqual([
      'the-whole-stack-npm-run-local',
      'schedules-a-day-of-jobs',
      'export',
      'export-1',
    ]);
  });

  it('a broken link is reported', () => {
    expect(brokenBecause({ from: 'README.md', target: 'docs/no-such-file.md' })).toMatch(/no such file/);
    expect(brokenBecause({ from: 'README.md', target: 'docs/design.md#no-such-heading' })).toMatch(/no heading #no-such-heading/);
    expect(brokenBecause({ from: 'docs/design.md', target: '../README.md#quick-start' })).toBeUndefined();
  });

  it('the README is at most 300 lines, with the quick start in its first 40', () => {
    const lines = readFileSync(join(projectRoot, 'README.md'), 'utf8').split('\n');
    expect(lines.length).toBeLessThanOrEqual(300);
    const opening = lines.slice(0, 40).join('\n');
    expect(opening).toMatch(/^## Quick start$/m);
    expect(opening).toContain('npm ci && npm run export:local');
    expect(opening).toMatch(/^npm test\b/m);
  });
});
