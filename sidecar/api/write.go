package api

import "net/http"

// WriteError answers err as every endpoint of the app API does: an *Error
// (found with errors.As) with its status, code, message and field, any
// other error as a 500 with code internal and nothing of the cause. Parts
// of the API served by other packages use it, so that every error has the
// same shape, codes and headers.
func WriteError(w http.ResponseWriter, err error) {
	status, body := errorBody(err)
	writeRaw(w, status, body)
}

// WriteJSON answers v as JSON with the status, as the app API does.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	writeRaw(w, status, mustJSON(v))
}
