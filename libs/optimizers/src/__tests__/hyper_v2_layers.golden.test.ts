import { describeHyperV2Layers } from './hyper_v2_layers_golden';

describeHyperV2Layers('cpu', 2e-6);
