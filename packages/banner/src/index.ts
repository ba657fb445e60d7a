export {
  type BannerKind,
  type BannerPart,
  type BannerState,
  type BannerView,
  bannerView,
  formatTime,
  type ViewOptions,
} from './bannerView.js';
export { defineQuiesceBanner, QuiesceBannerElement } from './quiesceBanner.js';
