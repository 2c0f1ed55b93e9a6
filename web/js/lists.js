// lists.js -- what the list pages (logs, quarantine) share: a domain
// filter filled from the tree, and a table under a row of headings.
import { get } from './api.js';
import { h } from './dom.js';

// A select of 'all domains' and every domain's path, filled when the tree
// arrives (without it, only 'all domains').
export function domainSelect(id) {
	const select = h('select', { id }, h('option', { value: '' }, 'all domains'));
	get('/api/v1/tree').then((t) => {
		const walk = (n, p) => n.domains.forEach((d) => {
			const path = `${p}/${d.name}`;
			select.append(h('option', { value: path }, path));
			walk(d, path);
		});
		walk(t, '');
	}, () => {});
	return select;
}

// A table of id whose columns are headed by headings (texts), rows its body.
export function table(id, headings, rows) {
	return h('table', { id }, h('thead', {}, h('tr', {}, headings.map((t) => h('th', {}, t)))),
		rows);
}
