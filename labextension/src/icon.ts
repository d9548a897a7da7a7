/**
 * The Kimi mark: a rounded square with a "K", drawn in the theme's icon colour.
 */
import { LabIcon } from '@jupyterlab/ui-components';

const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M5 2h14a3 3 0 0 1 3 3v14a3 3 0 0 1-3 3H5a3 3 0 0 1-3-3V5a3 3 0 0 1 3-3zm0 2a1 1 0 0 0-1 1v14a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1V5a1 1 0 0 0-1-1z"/>
    <path d="M7.5 6.5h2.2v4.6l4.3-4.6h2.8l-4.6 4.8 4.9 6.2h-2.8l-3.6-4.7-1 1.05v3.65H7.5z"/>
  </g>
  <circle class="jp-icon-brand0" fill="#1783ff" cx="17.3" cy="6.7" r="1.6"/>
</svg>`;

export const kimiIcon = new LabIcon({ name: 'kimi-jupyter:kimi', svgstr });
