// The browser bundle's entry: loading it defines <quiesce-banner>.
import { defineQuiesceBanner } from './quiesceBanner.js';

defineQuiesceBanner();
