self._set(@@q@@@@app_component@@@@q@@, @@q@@@@app_key@@@@q@@, self.secrets[@@q@@postgres@@q@@][@@q@@@@secret_key@@@@q@@])
