// Which sensors are registered MQTT devices (GET /api/devices): the tiles
// mark them. The list is public to every signed-in user; it never holds
// secrets.

import type { Device } from '../types';

export type { Device };

/** The ids of the active devices of a GET /api/devices answer. */
export function registeredIds(res: { devices?: Device[] } | Device[] | null | undefined): Set<string> {
  const list = Array.isArray(res) ? res : (res?.devices ?? []);
  return new Set(list.filter((d) => d.active).map((d) => d.id));
}
