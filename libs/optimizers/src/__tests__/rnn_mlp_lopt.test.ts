import { useTestBackend } from './helpers';
import { describeRNNMLPLOptUnit } from './rnn_mlp_lopt_unit';

beforeAll(useTestBackend);

describeRNNMLPLOptUnit('default test backend');
