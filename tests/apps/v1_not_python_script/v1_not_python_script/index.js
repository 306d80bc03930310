module.exports = async function (context, req) { return "JavaScript"; };
