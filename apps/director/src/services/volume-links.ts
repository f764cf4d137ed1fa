/**
 * The link name a service gets for a link it did not name (a volume's storage): the linked
 * service's name lowercased, other characters as `-`, made unique among `taken`.
 */
export const linkNameOf = (name: string, taken: Readonly<Record<string, string>>): string => {
  const base =
    name
      .toLowerCase()
      .replace(/[^a-z0-9_-]/g, '-')
      .replace(/^[^a-z0-9]+/, '')
      .slice(0, 56) || 'storage';
  let link = base;
  for (let n = 2; link in taken; n++) link = `${base}-${n}`;
  return link;
};

/** Whether two mount points are the same or one lies inside the other (one volume would hide another). */
export const mountsOverlap = (a: string, b: string): boolean =>
  a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
