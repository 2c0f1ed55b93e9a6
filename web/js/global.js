// global.js -- Global agent settings: those set for every agent at the
// root (roaming, update privileges), then every other setting's value at
// the root.
import { h } from './dom.js';
import { settingsPanel } from './settings.js';

const globals = ['roaming', 'update.allow_update_now'];

export function show(main) {
	main.append(
		h('h1', {}, 'Global agent settings'),
		h('section', { class: 'panel', id: 'global-settings' },
			h('h2', {}, 'Every agent'),
			h('p', { class: 'muted' }, 'Roaming and the Update Now privilege are set here ' +
				'for all and may be changed per domain or client in Agents.'),
			settingsPanel('root', { only: globals })),
		h('section', { class: 'panel', id: 'root-settings' },
			h('h2', {}, 'Defaults at the root'),
			h('p', { class: 'muted' }, 'Domains and clients inherit these unless they set their ' +
				'own (see Agents > a domain > Settings).'),
			settingsPanel('root', { only: null, exclude: globals })));
}
