/**
 * Imported first by the commands people run (export:local, local, restore, verify-export). On
 * Node.js 20 the AWS SDK emits a NodeVersionSupportWarning (its releases after the first week of
 * January 2027 need Node.js 22) in every process that makes a client; the Lambda functions run on
 * Node.js 22, so for a person running these commands it is noise. The SDK's own switch turns it
 * off, here and in the processes these commands start.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
