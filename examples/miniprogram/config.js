// Where the merchant's back end is. The mini-program may only call domains
// configured as its request domains in the WeChat admin console.
module.exports = {
  backendBaseURL: 'https://shop.example.com/api',
};
