// The console's state, shared by its panels (and window.cctvhub, read by the browser tests),
// and the few page helpers they all use.
export const state = {
  me: null, // the session: name, role, agency_id, capabilities
  config: { tile_url: null },
  services: [],
  agencies: new Map(),
  cameras: [],
  map: null,
  wall: null,
  event: null, // the event shown in the side panel
  eventRaw: null, // its JSON as last read (a refresh redraws only on a change)
  place: null, // where the next event opens
  playAfterOpen: null, // a bell's camera to put on the wall once its event opens
  cameraRows: 200,
  alerts: null, // the alerts panel (sessions that may read alerts)
  health: new Map(), // camera id -> its record of GET /api/v1/camera-health (watched cameras)
  healthCounts: null, // cameras per health state, null until loaded (or the role may not see)
  healthFilter: '', // the camera list: '' all, 'down' offline or auth-failed, or one state
  healthShown: null, // the camera whose health the details panel shows, and its figures
};

export const $ = (sel) => document.querySelector(sel);

export function show(id, on) {
  $(id).hidden = !on;
}

// Whether the session may call a route, "METHOD /path/template" as in the hub's route table
// ("GET /api/v1/camera-health", "POST /api/v1/events/{id}/approve"): the session's
// capabilities, which the hub computes from the roles it enforces.
export function can(route) {
  return Boolean(state.me && Array.isArray(state.me.capabilities) && state.me.capabilities.includes(route));
}
