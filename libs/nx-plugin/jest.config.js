module.exports = { ...require('../../jest.preset.js').preset(__dirname), testTimeout: 600000 };
