// Tests run on the cpu backend unless LOPT_TEST_BACKEND says otherwise (wasm tests opt in per file).
process.env.LOPT_BACKEND = process.env.LOPT_TEST_BACKEND || process.env.LOPT_BACKEND || 'cpu';
process.env.TF_CPP_MIN_LOG_LEVEL = '2';
