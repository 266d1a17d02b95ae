// The tabs: one view shown at a time.
import { state, show } from './state.js';
import { renderCameraTable } from './cameras.js';

export function selectTab(name) {
  for (const b of document.querySelectorAll('#tabs button')) {
    b.classList.toggle('active', b.dataset.tab === name);
  }
  show('#map-view', name === 'map');
  show('#wall-view', name === 'wall');
  show('#cameras-view', name === 'cameras');
  show('#alerts-view', name === 'alerts');
  if (name === 'map') state.map.invalidate();
  if (name === 'cameras') renderCameraTable();
}
