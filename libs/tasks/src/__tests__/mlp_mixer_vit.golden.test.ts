import { describeMixerVitGolden } from './mlp_mixer_vit_golden';

describeMixerVitGolden('cpu');
